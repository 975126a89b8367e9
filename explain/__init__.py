"""Explanations: evidence as data, a deterministic template, an LLM chain, a grounding check.

    from explain.evidence import build_evidence          # plain inputs -> Evidence (with ids)
    from explain.template import TemplateExplainer        # instant, always available
    from explain.grounding import GroundingChecker        # is a text true to its evidence?
    from explain.llm import LLMExplainer                  # LangChain chain + check + fallback
    from explain.cache import CachedExplainer             # (user, item, bundle, evidence) LRU

Imports nothing of ours but `explainrec.errors`; heavy libraries load only when an LLM does.
"""
