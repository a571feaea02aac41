"""The bank-world simulator: one deterministic synthetic world served over each provider's real contract.

Written from ``shared/reference/bank-contracts.md`` independently of ``resources/`` (it never imports
``resources/`` or ``pipelines/``), so that a misunderstanding of a contract in one is caught by the other.
"""
