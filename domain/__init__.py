"""What every part of Hawker shares and nothing else: the error codes, the one error type, and the
field checks. It imports nothing of ours, so every domain package (and the transports) may import it."""
from domain.errors import TABLE, Code, DomainError, Rule

__all__ = ["TABLE", "Code", "DomainError", "Rule"]
