"""Hawker chat: messages, moderation, rate limits, history, reactions, Q&A and comment-to-buy.

A library with a small async API over Redis; it knows nothing about sockets or HTTP."""
from chat.commentbuy import BuyIntent, parse_buy
from chat.errors import SEND_CODES, ChatRefused
from chat.message import Actor, Message
from chat.overload import OverloadPolicy
from chat.policy import ChatPolicy
from chat.reactions import REACTIONS, ReactionTally
from chat.service import Chat, ChatState, Removal, Sent

__all__ = ["Actor", "BuyIntent", "Chat", "ChatPolicy", "ChatRefused", "ChatState", "Message", "OverloadPolicy",
           "REACTIONS", "ReactionTally", "Removal", "SEND_CODES", "Sent", "parse_buy"]
