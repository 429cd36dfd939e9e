"""Analysis: ``analysis.pipeline.analyze(inputs, rules, kernel_file) -> Analysis`` behind every analysing
command; ``analysis.compare`` pairs two analyses; ``analysis.summary`` summarises variants.

Kept free of imports: ``rules.engine`` imports ``analysis.proposals``, and a package ``__init__`` that
imported the pipeline (which imports the rules) would close an import cycle.
"""
