// Words of the live formats (auctions, giveaways, quizzes) in English and Korean.
import { addStrings } from "./i18n.js";

addStrings({
  "auction.title": "Live auction", "auction.high": "Current bid", "auction.leader": "High bidder", "auction.bids": "{n} bids",
  "auction.bid": "Bid {p}", "auction.max": "Your max bid", "auction.setmax": "Set max bid", "auction.ends": "Ends in {t}",
  "auction.soon": "Starting soon - pre-bid with a max bid", "auction.leading": "You're the high bidder!",
  "auction.outbid": "You've been outbid!", "auction.behind": "Another bidder's max is higher - bid again.",
  "auction.won": "You won! Pay {p} below.", "auction.second": "Second chance: it's yours for {p} - pay below.",
  "auction.sold": "Sold to {w} for {p}", "auction.nobids": "No bids - not sold", "auction.reserve": "Reserve not met - not sold",
  "auction.extended": "A late bid added time!", "auction.paid": "Paid - order {id}.", "auction.pay": "Pay {p}",
  "auction.prebid": "Your pre-bid: {p}", "auction.cancelled": "The auction was cancelled.",
  "auction.create": "Create auction", "auction.start_price": "Starting bid", "auction.duration": "Duration (s)",
  "auction.counter": "Counter-bid time (s)", "auction.sudden": "Sudden death (no extra time)", "auction.reserve_price": "Reserve price (optional)",
  "auction.start": "Start", "auction.cancel": "Cancel", "auction.audit": "Audit",
  "giveaway.title": "Giveaway", "giveaway.enter": "Enter", "giveaway.entered": "You're in!", "giveaway.entries": "{n} entries",
  "giveaway.commitment": "Draw commitment", "giveaway.keyword": "Or type {k} in chat", "giveaway.watching": "You must be watching at the draw",
  "giveaway.winner": "Winner: {w}", "giveaway.won": "You won the giveaway!", "giveaway.seed": "Seed", "giveaway.open": "Open giveaway",
  "giveaway.name": "Prize", "giveaway.kw": "Chat keyword (optional)", "giveaway.mustwatch": "Must be watching", "giveaway.draw": "Draw",
  "giveaway.cancel": "Cancel", "giveaway.verify": "Anyone can check the draw:", "giveaway.none": "No eligible entries",
  "giveaway.closed": "The giveaway was cancelled.",
  "quiz.title": "Quiz", "quiz.hint": "The answer is revealed when the quiz closes.", "quiz.answer": "Answer: {o}",
  "quiz.right": "{n} of {m} got it right", "quiz.first": "Fastest correct answers", "quiz.board": "Leaderboard",
  "quiz.me": "You: #{r} · {c} correct", "quiz.create": "Launch quiz", "quiz.correct": "Correct option (1, 2, ...)",
  "quiz.ms": "{s} s",
}, {
  "auction.title": "라이브 경매", "auction.high": "현재 입찰가", "auction.leader": "최고 입찰자", "auction.bids": "입찰 {n}회",
  "auction.bid": "{p} 입찰", "auction.max": "최대 입찰가", "auction.setmax": "최대 입찰가 설정", "auction.ends": "{t} 후 종료",
  "auction.soon": "곧 시작 - 최대 입찰가로 사전 입찰하세요", "auction.leading": "최고 입찰자입니다!",
  "auction.outbid": "더 높은 입찰이 들어왔습니다!", "auction.behind": "다른 분의 최대 입찰가가 더 높습니다 - 다시 입찰하세요.",
  "auction.won": "낙찰되었습니다! 아래에서 {p}을(를) 결제하세요.", "auction.second": "차순위 기회: {p}에 구매할 수 있습니다 - 아래에서 결제하세요.",
  "auction.sold": "{w}님께 {p}에 낙찰", "auction.nobids": "입찰 없음 - 유찰", "auction.reserve": "최저가 미달 - 유찰",
  "auction.extended": "마감 직전 입찰로 시간이 늘었습니다!", "auction.paid": "결제 완료 - 주문 {id}.", "auction.pay": "{p} 결제",
  "auction.prebid": "사전 입찰: {p}", "auction.cancelled": "경매가 취소되었습니다.",
  "auction.create": "경매 만들기", "auction.start_price": "시작가", "auction.duration": "기간(초)",
  "auction.counter": "연장 시간(초)", "auction.sudden": "서든데스(연장 없음)", "auction.reserve_price": "최저 낙찰가(선택)",
  "auction.start": "시작", "auction.cancel": "취소", "auction.audit": "감사",
  "giveaway.title": "경품 추첨", "giveaway.enter": "응모하기", "giveaway.entered": "응모되었습니다!", "giveaway.entries": "응모 {n}명",
  "giveaway.commitment": "추첨 약속값", "giveaway.keyword": "또는 채팅에 {k} 입력", "giveaway.watching": "추첨 때 시청 중이어야 합니다",
  "giveaway.winner": "당첨자: {w}", "giveaway.won": "경품에 당첨되었습니다!", "giveaway.seed": "시드", "giveaway.open": "경품 추첨 열기",
  "giveaway.name": "경품", "giveaway.kw": "채팅 키워드(선택)", "giveaway.mustwatch": "시청 중인 분만", "giveaway.draw": "추첨",
  "giveaway.cancel": "취소", "giveaway.verify": "누구나 추첨을 검증할 수 있습니다:", "giveaway.none": "응모 자격자가 없습니다",
  "giveaway.closed": "경품 추첨이 취소되었습니다.",
  "quiz.title": "퀴즈", "quiz.hint": "정답은 퀴즈가 끝나면 공개됩니다.", "quiz.answer": "정답: {o}",
  "quiz.right": "{m}명 중 {n}명 정답", "quiz.first": "가장 빠른 정답", "quiz.board": "순위표",
  "quiz.me": "나: {r}위 · 정답 {c}개", "quiz.create": "퀴즈 시작", "quiz.correct": "정답 번호(1, 2, ...)",
  "quiz.ms": "{s}초",
});

/** Minor units <-> what people type (KRW and JPY have no minor unit). */
export function digits(currency) { return { KRW: 0, JPY: 0 }[currency] ?? 2; }
export function toMinor(value, currency) { return Math.round(Number(value) * 10 ** digits(currency)); }
