"""Dev-only tools: benchmarks, the placement-quality harness, load/fault/fuzz runs, scripts.

On top of every layer; nothing that serves requests imports it (docs/architecture.md).
"""
