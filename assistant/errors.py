"""Errors the user sees as a friendly message in the chat, never as a stack trace."""


class AnswerError(Exception):
    """A model call failed in a way the user should be told about (server down, 401, timeout)."""

    def __init__(self, user_message: str, *, kind: str = "error") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.kind = kind  # "unreachable" | "timeout" | "auth" | "rate_limit" | "server" | "error"
