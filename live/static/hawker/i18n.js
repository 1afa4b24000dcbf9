// Words of the pages, [English, Korean] per key so a translation sits beside its source, and a
// sentence for every error code the server sends.
// An unknown code gets the generic sentence: people never see a raw code, and never nothing.
const EN = {};
const KO = {};
/** Words for the pages, {key: [English, Korean]}: WORDS below, and more from feature modules
 * (so the tables here stay small). */
export function addWords(words) {
  for (const [key, [en, ko]] of Object.entries(words)) { EN[key] = en; KO[key] = ko; }
}

const WORDS = {
  "lang.name": ["English", "한국어"],
  "lang.switch": ["Language", "언어"],
  "app.title": ["Hawker", "호커"],
  "studio.title": ["Hawker studio", "호커 스튜디오"],
  "conn.connecting": ["Connecting…", "연결 중…"],
  "conn.online": ["Connected", "연결됨"],
  "conn.offline": ["Connection lost - reconnecting…", "연결이 끊겼습니다 - 다시 연결하는 중…"],
  "signin.title": ["Sign in", "로그인"],
  "signin.token": ["Host token", "호스트 토큰"],
  "signin.broadcast": ["Broadcast id", "방송 ID"],
  "signin.go": ["Sign in", "로그인"],
  "signout": ["Sign out", "로그아웃"],
  "media.camera": ["Camera", "카메라"],
  "media.mic": ["Microphone", "마이크"],
  "media.preview": ["Preview", "미리보기"],
  "media.golive": ["Go live", "방송 시작"],
  "media.stop": ["Stop video", "영상 중지"],
  "media.end": ["End show", "방송 종료"],
  "media.live": ["Live", "라이브"],
  "media.offair": ["Off air", "방송 전"],
  "media.starting": ["Starting…", "시작하는 중…"],
  "media.waiting": ["Waiting for the host's video…", "호스트의 영상을 기다리는 중…"],
  "media.hls": ["Playing over HLS", "HLS로 재생 중"],
  "media.webrtc": ["Playing over WebRTC", "WebRTC로 재생 중"],
  "media.unmute": ["Sound on", "소리 켜기"],
  "media.mute": ["Sound off", "소리 끄기"],
  "media.ended": ["The show has ended.", "방송이 끝났습니다."],
  "media.stalled": ["The host's video is reconnecting…", "호스트의 영상을 다시 연결하는 중…"],
  "media.stalled.host": ["Video interrupted - reconnecting…", "영상이 끊겼습니다 - 다시 연결하는 중…"],
  "media.warn.B_FRAMES": ["Your encoder sends B-frames: viewers will stutter. In OBS set B-frames to 0 (x264 options: bframes=0), then restart the stream.", "인코더가 B-프레임을 보내고 있어 시청자 화면이 끊깁니다. OBS에서 B-프레임을 0으로 설정(x264 옵션: bframes=0)한 뒤 방송을 다시 시작하세요."],
  "media.warn.KEYFRAME_INTERVAL_LONG": ["Keyframes are more than 4 s apart: new viewers wait for a picture. In OBS set Keyframe Interval to 1 or 2 s.", "키프레임 간격이 4초를 넘어 새 시청자가 화면을 기다립니다. OBS에서 키프레임 간격을 1초 또는 2초로 설정하세요."],
  "media.warn.BITRATE_HIGH": ["Your video bitrate is higher than this server is set up for: lower the bitrate (1000-2500 kbps).", "영상 비트레이트가 이 서버의 설정보다 높습니다. 비트레이트를 낮추세요(1000-2500 kbps)."],
  "products.title": ["Products", "상품"],
  "products.pin": ["Pin", "고정"],
  "products.unpin": ["Unpin", "고정 해제"],
  "products.pinned": ["Pinned", "고정됨"],
  "sale.title": ["Flash sale", "타임 세일"],
  "sale.product": ["Product", "상품"],
  "sale.units": ["Units", "수량"],
  "sale.price": ["Price (minor units)", "가격(최소 단위)"],
  "sale.limit": ["Limit per viewer", "1인당 한도"],
  "sale.hold": ["Hold time (s)", "보류 시간(초)"],
  "sale.countdown": ["Opens in (s)", "시작까지(초)"],
  "sale.schedule": ["Schedule sale", "세일 예약"],
  "sale.cancel": ["Cancel", "취소"],
  "sale.lots": ["Stock per lot", "로트별 재고"],
  "sale.available": ["available", "남음"],
  "sale.held": ["held", "보류"],
  "sale.sold": ["sold", "판매"],
  "sale.waitlist": ["waitlist", "대기"],
  "sale.scheduled": ["Sale scheduled", "세일이 예약되었습니다"],
  "poll.title": ["Poll", "투표"],
  "poll.question": ["Question", "질문"],
  "poll.options": ["Options (one per line)", "선택지(한 줄에 하나)"],
  "poll.duration": ["Duration (s)", "기간(초)"],
  "poll.launch": ["Launch poll", "투표 시작"],
  "poll.close": ["Close poll", "투표 종료"],
  "poll.closed": ["Poll closed", "투표가 끝났습니다"],
  "poll.votes": ["{n} votes", "{n}표"],
  "poll.vote": ["Vote for {o}", "{o}에 투표"],
  "chat.title": ["Chat", "채팅"],
  "chat.placeholder": ["Say something…", "메시지를 입력하세요…"],
  "chat.send": ["Send", "보내기"],
  "chat.delete": ["Delete", "삭제"],
  "chat.timeout": ["Time out 5 min", "5분 채팅 금지"],
  "chat.ban": ["Ban", "차단"],
  "chat.slow": ["Slow mode", "슬로 모드"],
  "chat.slow.off": ["Off", "끔"],
  "chat.commentbuy": ["Comment to buy (\"buy 2\")", "댓글 구매(\"구매 2개\")"],
  "chat.removed": ["removed", "삭제됨"],
  "chat.banned": ["You can no longer chat in this show.", "이 방송에서 더 이상 채팅할 수 없습니다."],
  "chat.muted": ["You are timed out from chat for a while.", "잠시 채팅이 금지되었습니다."],
  "chat.order.ok": ["Your comment reserved {n} - finish checkout below.", "댓글로 {n}개를 담았습니다 - 아래에서 결제를 마치세요."],
  "dash.title": ["Live dashboard", "실시간 현황"],
  "dash.viewers": ["Viewers", "시청자"],
  "dash.hearts": ["Hearts/min", "하트/분"],
  "dash.chat": ["Chat/min", "채팅/분"],
  "dash.orders": ["Orders", "주문"],
  "dash.revenue": ["Revenue", "매출"],
  "dash.webhooks": ["Webhook failures", "웹훅 실패"],
  "player.hearts": ["Send a heart", "하트 보내기"],
  "player.viewers": ["{n} watching", "{n}명 시청 중"],
  "card.left": ["{n} left", "{n}개 남음"],
  "card.opens": ["Opens in {t}", "{t} 후 시작"],
  "card.buy": ["Buy now", "지금 구매"],
  "card.soldout": ["Sold out", "품절"],
  "card.closed": ["Sale ended", "세일 종료"],
  "card.waitlist": ["Join the waitlist", "대기 명단에 등록"],
  "card.waitlisted": ["You are number {n} on the waitlist.", "대기 {n}번입니다."],
  "card.granted": ["A unit freed up for you!", "재고가 생겨 회원님께 배정되었습니다!"],
  "hold.title": ["Reserved for you", "회원님을 위해 보류됨"],
  "hold.left": ["Held for {t}", "{t} 동안 보류"],
  "hold.expired": ["Your hold ran out.", "보류 시간이 끝났습니다."],
  "hold.release": ["Release", "보류 해제"],
  "hold.cancelled": ["The sale was cancelled: your hold was released.", "판매가 취소되어 보류가 해제되었습니다."],
  "waitlist.cancelled": ["The sale was cancelled.", "판매가 취소되었습니다."],
  "checkout.testmode": ["TEST MODE - no real payment is taken", "테스트 모드 - 실제 결제가 이루어지지 않습니다"],
  "checkout.title": ["Checkout", "결제"],
  "checkout.name": ["Name", "이름"],
  "checkout.email": ["Email", "이메일"],
  "checkout.card": ["Card number", "카드 번호"],
  "checkout.exp": ["Expiry (MM/YY)", "유효기간(MM/YY)"],
  "checkout.cvc": ["CVC", "CVC"],
  "checkout.pay": ["Pay {p}", "{p} 결제"],
  "checkout.paying": ["Paying…", "결제 중…"],
  "checkout.sandbox": ["Sandbox: 4242 4242 4242 4242 succeeds.", "샌드박스: 4242 4242 4242 4242는 승인됩니다."],
  "checkout.done": ["Thank you! Order {id} is confirmed.", "감사합니다! 주문 {id}이(가) 확정되었습니다."],
  "err.title": ["Something went wrong", "문제가 발생했습니다"],
  // merchant analytics (studio dashboard, post-show report) and social proof (player)
  "dash.chart.viewers": ["Viewers per minute", "분당 시청자"],
  "dash.chart.sales": ["Orders per minute", "분당 주문"],
  "dash.report": ["Show report", "방송 리포트"],
  "report.title": ["Show report", "방송 리포트"],
  "report.time": ["Time", "시각"],
  "report.csv": ["Download CSV", "CSV 다운로드"],
  "report.back": ["Back to the studio", "스튜디오로 돌아가기"],
  "report.viewers_peak": ["Peak viewers", "최고 동시 시청자"],
  "report.viewers_avg": ["Average viewers", "평균 시청자"],
  "report.unique": ["Unique viewers", "순 시청자"],
  "report.watch": ["Average watch time", "평균 시청 시간"],
  "report.orders": ["Orders", "주문"],
  "report.units": ["Units", "수량"],
  "report.revenue": ["Revenue", "매출"],
  "report.net": ["Net revenue", "순매출"],
  "report.refunds": ["Refunds", "환불"],
  "report.aov": ["Average order value", "평균 주문 금액"],
  "report.conversion": ["Conversion", "전환율"],
  "report.funnel": ["Funnel", "구매 퍼널"],
  "report.reservers": ["Reserved", "담음"],
  "report.buyers": ["Bought", "구매"],
  "report.viewers": ["Watched", "시청"],
  "report.chart.viewers": ["Viewers over the show", "방송 중 시청자"],
  "report.chart.sales": ["Sales over the show", "방송 중 판매"],
  "report.chart.engagement": ["Chat and hearts", "채팅과 하트"],
  "report.chat": ["Chat", "채팅"],
  "report.hearts": ["Hearts", "하트"],
  "report.votes": ["Poll votes", "투표"],
  "report.sales": ["Sales", "세일"],
  "report.sell_through": ["Sell-through", "판매율"],
  "report.sellout": ["Sold out after", "품절까지"],
  "report.holds": ["Holds paid / expired", "결제 / 만료된 보류"],
  "report.at_open": ["Viewers at open", "시작 시 시청자"],
  "report.none": ["No figures yet for this show.", "아직 이 방송의 수치가 없습니다."],
  "report.signin": ["Open the studio first to sign in; the report uses the same sign-in.", "먼저 스튜디오를 열어 로그인하세요. 리포트는 같은 로그인을 씁니다."],
  "proof.sold": ["{n} sold", "{n}개 판매"],
  "proof.bought": ["{name} just bought {title}", "{name}님이 방금 {title}을(를) 구매했어요"],
  "proof.someone": ["Someone", "누군가"],
  "proof.soldout": ["{title} is sold out", "{title} 품절"],
  "proof.restock": ["{title} is back in stock", "{title} 재입고"],
  "studio.names": ["Show buyers' first names in the player", "플레이어에 구매자 이름(이름만) 표시"],
  "ship.title": ["Shipping", "배송지"],
  "ship.country": ["Country", "국가"],
  "ship.name": ["Recipient", "받는 분"],
  "ship.phone": ["Phone", "휴대폰 번호"],
  "ship.postal": ["Postal code", "우편번호"],
  "ship.zip": ["ZIP code", "ZIP 코드"],
  "ship.line1": ["Address", "주소"],
  "ship.line2": ["Apartment, suite, unit", "상세 주소"],
  "ship.line1.kr": ["Road-name address", "도로명 주소"],
  "ship.line2.kr": ["Detail address (building, unit)", "상세 주소(동, 호수)"],
  "ship.city": ["City", "시/군/구"],
  "ship.region": ["State / province", "주/도"],
  "ship.state": ["State", "주"],
  "ship.prefecture": ["Prefecture", "도도부현"],
  "ship.optional": ["(optional)", "(선택)"],
  "replay.badge": ["Replay", "다시보기"],
  "replay.chapters": ["Products in this show", "이 방송의 상품"],
  "replay.jump": ["Jump to", "바로 가기"],
  "sale.replay": ["Keep open for the replay", "다시보기에서도 판매"],
};
addWords(WORDS);

// One sentence per code, [English, Korean]. Codes from docs/protocol.md (REST, media, hub, chat, checkout).
const ERRORS = {
  GENERIC: ["Something went wrong. Please try again.", "문제가 발생했습니다. 다시 시도해 주세요."],
  BAD_REQUEST: ["The request was not understood.", "요청을 이해하지 못했습니다."],
  INVALID_JSON: ["The request was not understood.", "요청을 이해하지 못했습니다."],
  UNAUTHORIZED: ["Please sign in again.", "다시 로그인해 주세요."],
  TOKEN_MISSING: ["You need to sign in first.", "먼저 로그인해야 합니다."],
  TOKEN_INVALID: ["Your sign-in is not valid. Please sign in again.", "로그인 정보가 올바르지 않습니다. 다시 로그인해 주세요."],
  TOKEN_EXPIRED: ["Your session has expired. Please reload the page.", "세션이 만료되었습니다. 페이지를 새로고침해 주세요."],
  BAD_AUTH: ["Your sign-in is not valid. Please sign in again.", "로그인 정보가 올바르지 않습니다. 다시 로그인해 주세요."],
  BROADCAST_REQUIRED: ["Choose a broadcast first.", "먼저 방송을 선택하세요."],
  FORBIDDEN: ["You are not allowed to do that.", "그 작업을 할 권한이 없습니다."],
  NOT_FOUND: ["That could not be found.", "찾을 수 없습니다."],
  BROADCAST_NOT_FOUND: ["This broadcast does not exist.", "존재하지 않는 방송입니다."],
  CONFLICT: ["That clashes with a change made just now. Please reload.", "방금 이루어진 변경과 충돌합니다. 새로고침해 주세요."],
  METHOD_NOT_ALLOWED: ["That action is not possible here.", "여기서는 할 수 없는 작업입니다."],
  PAYLOAD_TOO_LARGE: ["That is too large to send.", "보내기에는 너무 큽니다."],
  UNSUPPORTED_MEDIA_TYPE: ["The request was not understood.", "요청을 이해하지 못했습니다."],
  UNPROCESSABLE: ["Please check the form.", "입력 내용을 확인해 주세요."],
  VALIDATION: ["Please check the form: a value is missing or not allowed.", "입력 내용을 확인해 주세요: 빠졌거나 허용되지 않는 값이 있습니다."],
  INTERNAL: ["The server had a problem. Please try again.", "서버에 문제가 생겼습니다. 다시 시도해 주세요."],
  REDIS_UNAVAILABLE: ["The service is briefly unavailable. Please try again.", "서비스를 잠시 사용할 수 없습니다. 다시 시도해 주세요."],
  REDIS_TOO_OLD: ["The service is not available: its database needs an upgrade.", "서비스를 사용할 수 없습니다: 데이터베이스 업그레이드가 필요합니다."],
  UNAVAILABLE: ["The service is briefly unavailable. Retrying…", "서비스를 잠시 사용할 수 없습니다. 다시 시도하는 중…"],
  REDIS_TOO_OLD: ["The service is not set up correctly (its database is too old). Please tell the shop.", "서비스 설정에 문제가 있습니다(데이터베이스 버전이 낮음). 상점에 알려 주세요."],
  BUSY: ["So many people are buying right now. Please try again in a moment.", "지금 구매하려는 분이 너무 많습니다. 잠시 후 다시 시도해 주세요."],
  SHUTTING_DOWN: ["The server is restarting. Reconnecting…", "서버가 다시 시작하는 중입니다. 다시 연결하는 중…"],
  BAD_EVENT: ["The request was not understood.", "요청을 이해하지 못했습니다."],
  BAD_PACKET: ["The request was not understood.", "요청을 이해하지 못했습니다."],
  BAD_PAYLOAD: ["The request was not understood.", "요청을 이해하지 못했습니다."],
  UNKNOWN_EVENT: ["That action is not supported.", "지원하지 않는 작업입니다."],
  FLOOD: ["You are going too fast. Wait a moment.", "너무 빠릅니다. 잠시 기다려 주세요."],
  NOT_JOINED: ["Not connected to the show. Reconnecting…", "방송에 연결되어 있지 않습니다. 다시 연결하는 중…"],
  TIMEOUT: ["The server took too long. Please try again.", "서버 응답이 너무 늦습니다. 다시 시도해 주세요."],
  BAD_STATE: ["The show is not in a state that allows this.", "지금 방송 상태에서는 할 수 없습니다."],
  PRODUCT_NOT_FOUND: ["That product is not in this show.", "이 방송에 없는 상품입니다."],
  SALE_NOT_FOUND: ["That sale is not in this show.", "이 방송에 없는 세일입니다."],
  POLL_NOT_FOUND: ["That poll is not in this show.", "이 방송에 없는 투표입니다."],
  POLL_ACTIVE: ["Close the current poll first.", "먼저 진행 중인 투표를 종료하세요."],
  POLL_CLOSED: ["This poll has closed.", "이 투표는 끝났습니다."],
  ALREADY_VOTED: ["You already voted for another option.", "이미 다른 선택지에 투표했습니다."],
  SALE_CLOSED: ["This sale is already closed.", "이 세일은 이미 종료되었습니다."],
  NOT_OPEN: ["The sale has not opened yet.", "세일이 아직 시작되지 않았습니다."],
  CLOSED: ["This sale has ended.", "이 세일은 끝났습니다."],
  SOLD_OUT: ["Sold out - every unit is taken.", "품절 - 모든 수량이 팔렸습니다."],
  LIMIT_REACHED: ["You have reached the limit for this item.", "이 상품의 구매 한도에 도달했습니다."],
  INVALID_QTY: ["That quantity is not allowed.", "허용되지 않는 수량입니다."],
  UNKNOWN_RESERVATION: ["That reservation no longer exists.", "그 예약은 더 이상 없습니다."],
  NOT_OWNER: ["That reservation is not yours.", "회원님의 예약이 아닙니다."],
  NOT_HELD: ["That reservation is no longer held.", "그 예약은 더 이상 보류 중이 아닙니다."],
  EXPIRED: ["Your hold ran out.", "보류 시간이 끝났습니다."],
  ALREADY_EXTENDED: ["This hold was already extended once.", "이 보류는 이미 한 번 연장되었습니다."],
  NOT_SOLD_OUT: ["Units are still available - buy now instead.", "아직 재고가 있습니다 - 지금 구매하세요."],
  INVALID_REQUEST: ["The request was not understood.", "요청을 이해하지 못했습니다."],
  NO_OPEN_SALE: ["No sale is open right now.", "지금 진행 중인 세일이 없습니다."],
  EMPTY: ["Type a message first.", "먼저 메시지를 입력하세요."],
  TOO_LONG: ["That message is too long.", "메시지가 너무 깁니다."],
  BLOCKED_WORD: ["That message contains a word that is not allowed.", "허용되지 않는 단어가 포함되어 있습니다."],
  LINK_NOT_ALLOWED: ["Links to that site are not allowed.", "그 사이트로의 링크는 허용되지 않습니다."],
  BANNED: ["You can no longer chat in this show.", "이 방송에서 더 이상 채팅할 수 없습니다."],
  MUTED: ["You are timed out from chat for a while.", "잠시 채팅이 금지되었습니다."],
  SLOW_MODE: ["Slow mode is on: wait a little before your next message.", "슬로 모드입니다: 잠시 후에 다시 보내세요."],
  RATE_LIMITED: ["You are sending messages too fast.", "메시지를 너무 빨리 보내고 있습니다."],
  DUPLICATE: ["You just sent that message.", "방금 같은 메시지를 보냈습니다."],
  NOT_A_QUESTION: ["That message is not a question.", "그 메시지는 질문이 아닙니다."],
  IDEMPOTENCY_KEY_REQUIRED: ["The payment request was incomplete. Please try again.", "결제 요청이 불완전합니다. 다시 시도해 주세요."],
  PAYMENT_DECLINED: ["Your card was declined. Try another card.", "카드가 거절되었습니다. 다른 카드를 사용해 보세요."],
  INSUFFICIENT_FUNDS: ["The card has insufficient funds.", "카드 잔액이 부족합니다."],
  REQUIRES_ACTION: ["Your bank needs to confirm this payment. Try another card.", "은행의 추가 인증이 필요합니다. 다른 카드를 사용해 보세요."],
  NOT_YOUR_RESERVATION: ["That reservation is not yours.", "회원님의 예약이 아닙니다."],
  RESERVATION_NOT_FOUND: ["That reservation no longer exists.", "그 예약은 더 이상 없습니다."],
  PAYMENT_IN_PROGRESS: ["A payment for this item is already running.", "이 상품의 결제가 이미 진행 중입니다."],
  IDEMPOTENCY_IN_PROGRESS: ["Your payment is still being processed.", "결제를 아직 처리하는 중입니다."],
  RESERVATION_EXPIRED: ["Your hold ran out before payment.", "결제 전에 보류 시간이 끝났습니다."],
  RESERVATION_RELEASED: ["This hold was released.", "이 보류는 해제되었습니다."],
  RESERVATION_NOT_HELD: ["This hold is no longer active.", "이 보류는 더 이상 유효하지 않습니다."],
  RESERVATION_SOLD: ["This hold has already been paid.", "이 보류는 이미 결제되었습니다."],
  RESERVATION_CANCELLED: ["The sale was cancelled, so this hold ended.", "판매가 취소되어 이 보류가 끝났습니다."],
  PAYMENT_REFUNDED: ["The payment could not be completed and was refunded.", "결제를 완료하지 못해 환불되었습니다."],
  REFUND_FAILED: ["The refund did not go through yet; it is retried automatically.", "환불이 아직 처리되지 않았습니다. 자동으로 다시 시도합니다."],
  SALE_CANCELLED: ["This sale was cancelled.", "이 판매는 취소되었습니다."],
  TOO_MANY_ATTEMPTS: ["Too many payment attempts for this hold.", "이 보류에 대한 결제 시도가 너무 많습니다."],
  INVALID_CARD: ["Check the card number, expiry and CVC.", "카드 번호, 유효기간, CVC를 확인하세요."],
  IDEMPOTENCY_MISMATCH: ["The payment request changed. Please try again.", "결제 요청이 바뀌었습니다. 다시 시도해 주세요."],
  PAYMENT_TIMEOUT: ["The payment service did not answer. Please try again.", "결제 서비스가 응답하지 않습니다. 다시 시도해 주세요."],
  ORDER_NOT_FOUND: ["That order could not be found.", "주문을 찾을 수 없습니다."],
  WEBHOOK_NOT_FOUND: ["That webhook could not be found.", "웹훅을 찾을 수 없습니다."],
  DELIVERY_NOT_FOUND: ["That delivery could not be found.", "전송 기록을 찾을 수 없습니다."],
  WEBHOOK_URL_REFUSED: ["That webhook address is not allowed: use a public https URL.", "허용되지 않는 웹훅 주소입니다: 공개 https URL을 사용하세요."],
  DESTINATION_REFUSED: ["The webhook address now points somewhere not allowed.", "웹훅 주소가 허용되지 않는 곳을 가리키고 있습니다."],
  DELIVERY_FAILED: ["The merchant's server did not accept the webhook.", "상점 서버가 웹훅을 받지 않았습니다."],
  ENDPOINT_DELETED: ["That webhook was deleted.", "웹훅이 삭제되었습니다."],
  EMBED_NOT_ALLOWED: ["This player may not be shown on this site.", "이 사이트에서는 플레이어를 표시할 수 없습니다."],
  BROADCAST_EXISTS: ["That broadcast already exists.", "이미 있는 방송입니다."],
  PRODUCT_EXISTS: ["That product already exists.", "이미 있는 상품입니다."],
  INVALID_BROADCAST: ["That broadcast id is not valid.", "방송 ID가 올바르지 않습니다."],
  INVALID_SDP: ["The browser's video offer was refused.", "브라우저의 영상 연결 요청이 거부되었습니다."],
  UNSUPPORTED_CODEC: ["This browser's video format is not supported.", "이 브라우저의 영상 형식은 지원되지 않습니다."],
  PUBLISH_CONFLICT: ["Another host is already live on this show.", "다른 호스트가 이미 이 방송을 송출하고 있습니다."],
  NOT_LIVE: ["The host is not live yet.", "호스트가 아직 방송을 시작하지 않았습니다."],
  USE_HLS: ["Switching to the standard stream.", "일반 스트림으로 전환합니다."],
  SESSION_REPLACED: ["A newer video connection of yours took this one's place.", "더 새로운 영상 연결이 이 연결을 대신했습니다."],
  SESSION_NOT_FOUND: ["That video session has already ended.", "그 영상 세션은 이미 끝났습니다."],
  EDGE_LIMIT: ["Too many video relays right now. Please try again.", "지금은 영상 중계가 너무 많습니다. 다시 시도해 주세요."],
  TRICKLE_NOT_SUPPORTED: ["The browser's video offer was refused.", "브라우저의 영상 연결 요청이 거부되었습니다."],
  NO_PLAYLIST: ["The video is not available yet.", "아직 영상을 볼 수 없습니다."],
  BAD_OPTION: ["That option is not in the poll.", "투표에 없는 선택지입니다."],
  // live auctions and giveaways (live/static/hawker/formats-*.js)
  AUCTION_NOT_FOUND: ["That auction is not in this show.", "이 방송에 없는 경매입니다."],
  BID_TOO_LOW: ["Someone bid first: your bid is below the minimum now.", "다른 분이 먼저 입찰했습니다: 입찰가가 최소 금액보다 낮습니다."],
  MAX_TOO_LOW: ["Your new max bid must be above your current one.", "새 최대 입찰가는 현재 최대 입찰가보다 높아야 합니다."],
  OWN_HIGH_BID: ["You already have the high bid.", "이미 최고 입찰자입니다."],
  AUCTION_CLOSED: ["The auction is over.", "경매가 끝났습니다."],
  NOT_STARTED: ["The auction has not started: set a max bid to pre-bid.", "경매가 아직 시작되지 않았습니다: 최대 입찰가로 사전 입찰하세요."],
  AUCTION_STARTED: ["A started auction cannot be cancelled.", "시작된 경매는 취소할 수 없습니다."],
  GIVEAWAY_NOT_FOUND: ["That giveaway is not in this show.", "이 방송에 없는 경품 행사입니다."],
  GIVEAWAY_ACTIVE: ["Draw or cancel the open giveaway first.", "먼저 진행 중인 경품 행사를 추첨하거나 취소하세요."],
  GIVEAWAY_CLOSED: ["This giveaway is closed.", "이 경품 행사는 마감되었습니다."],
  BELOW_COMMITTED: ["Stock cannot go below what is already held or sold.", "이미 보류되거나 판매된 수량보다 적게 할 수 없습니다."],
  CONFIRM_FAILED: ["The order could not be confirmed.", "주문을 확정하지 못했습니다."],
  LOT_EXISTS: ["That sale already exists.", "이미 있는 세일입니다."],
  UNKNOWN_LOT: ["That sale is not in this show.", "이 방송에 없는 세일입니다."],
  NOT_PAYING: ["This hold is not being paid.", "이 보류는 결제 중이 아닙니다."],
  NOT_YET: ["Not yet - please wait a moment.", "아직입니다 - 잠시 기다려 주세요."],
  PAYMENT_FAILED: ["The payment failed. Please try again.", "결제에 실패했습니다. 다시 시도해 주세요."],
  NO_CAMERA: ["The camera or microphone could not be opened. Check the browser's permission.", "카메라나 마이크를 열 수 없습니다. 브라우저 권한을 확인하세요."],
  NETWORK: ["The server could not be reached. Check your connection.", "서버에 연결할 수 없습니다. 연결 상태를 확인하세요."],
  VIDEO_FAILED: ["The video could not be played.", "영상을 재생할 수 없습니다."],
};

const TABLES = { en: EN, ko: KO };
const listeners = [];
let lang = pickLang();

function pickLang() {
  const q = new URLSearchParams(location.search).get("lang");
  if (q && TABLES[q]) return q;
  try {
    const saved = localStorage.getItem("hawker.lang");
    if (saved && TABLES[saved]) return saved;
  } catch (_) { /* storage may be blocked in an iframe */ }
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  for (const l of langs) { const p = String(l).slice(0, 2).toLowerCase(); if (TABLES[p]) return p; }
  return "en";
}

export function getLang() { return lang; }
export function setLang(l) {
  if (!TABLES[l]) return;
  lang = l;
  try { localStorage.setItem("hawker.lang", l); } catch (_) { /* ignore */ }
  document.documentElement.lang = l;
  applyI18n(document);
  for (const fn of listeners) fn(l);
}
export function onLang(fn) { listeners.push(fn); }

export function t(key, vars = {}) {
  const s = TABLES[lang][key] ?? EN[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ""));
}

/** A sentence for an error code (or an error object {code}), never the raw code. */
export function errorText(err) {
  const code = typeof err === "string" ? err : (err && err.code) || "GENERIC";
  const row = ERRORS[code] || ERRORS.GENERIC;
  return row[lang === "ko" ? 1 : 0];
}
export const ERROR_CODES = Object.keys(ERRORS);

/** Fill every [data-i18n] element's text and [data-i18n-attr="attr:key,..."] attributes. */
export function applyI18n(root) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-attr]").forEach((el) => {
    for (const pair of el.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  });
}

export function langSwitcher(select) {
  select.innerHTML = "";
  for (const [code, table] of Object.entries(TABLES)) {
    const o = document.createElement("option");
    o.value = code; o.textContent = table["lang.name"]; o.lang = code;
    select.appendChild(o);
  }
  select.value = lang;
  select.addEventListener("change", () => setLang(select.value));
  document.documentElement.lang = lang;
}
