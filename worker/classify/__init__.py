"""Where STOP is decided, pure: normalization, language packs, rules, scopes, the decision."""

from worker.classify.decide import Decision, classify, decide

__all__ = ["Decision", "classify", "decide"]
