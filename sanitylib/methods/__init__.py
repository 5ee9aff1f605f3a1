"""The method library: explanations, randomization, similarity and quality metrics.

Tensors in, tensors or arrays out: no tables, no files.
"""
