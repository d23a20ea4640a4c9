"""Conversation analytics: emotion, cognitive signals, transitions, moments and the summary of a live session."""
from .conversation import ConversationAnalytics
from .models import load_models

__all__ = ["ConversationAnalytics", "load_models"]
