import aiohttp


async def test_healthz_and_readyz(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/healthz") as r:
            assert r.status == 200
            assert (await r.json())["status"] == "ok"
        async with http.get(server.url + "/readyz") as r:
            assert r.status == 200


async def test_unknown_route_is_json_error(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/nope") as r:
            assert r.status == 404
            body = await r.json()
            assert body["error"]["code"] == "NOT_FOUND"
