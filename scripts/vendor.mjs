// Copies the browser builds of the pinned npm packages into live/static/vendor/ (committed, so the
// Python package and the Docker image carry them without node). Run after changing package.json:
//   npm ci && npm run vendor
import { copyFileSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";

const out = "live/static/vendor";
mkdirSync(out, { recursive: true });
const files = [
  ["node_modules/socket.io-client/dist/socket.io.msgpack.min.js", "socket.io.msgpack.min.js"],
  ["node_modules/socket.io-client/dist/socket.io.min.js", "socket.io.min.js"],
  ["node_modules/hls.js/dist/hls.min.js", "hls.min.js"],
  ["node_modules/uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["node_modules/uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["node_modules/uplot/LICENSE", "uPlot.LICENSE"],
];
for (const [src, dst] of files) copyFileSync(src, `${out}/${dst}`);
const versions = {};
for (const name of ["socket.io-client", "socket.io-msgpack-parser", "hls.js", "uplot"]) {
  versions[name] = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
}
writeFileSync(`${out}/versions.json`, JSON.stringify(versions, null, 2) + "\n");
console.log("vendored", versions);
