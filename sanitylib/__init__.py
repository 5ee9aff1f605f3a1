"""sanitylib: helpers for an executable replication of "Sanity Checks for Saliency Maps".

Adebayo, Gilmer, Muelly, Goodfellow, Hardt and Kim, NeurIPS 2018 (arXiv 1810.03292), and the
follow-up by Kokhlikyan et al. (arXiv 2106.07475). Modules:

- :mod:`sanitylib.data`: MNIST, Fashion-MNIST and natural photographs, with offline sources.
- :mod:`sanitylib.models`: the paper's CNN and MLP, Inception v3, ordered named blocks.
- :mod:`sanitylib.training`: a seeded, cached trainer (true or permuted labels).
- :mod:`sanitylib.saliency`: the nine saliency methods behind one ``explain`` call.
- :mod:`sanitylib.randomization`: cascading, independent and bottom-up re-initialization.
- :mod:`sanitylib.similarity`: Spearman, SSIM, HOG and vector similarities, random baselines.
- :mod:`sanitylib.cache`: configuration-keyed, checksummed on-disk cache.
- :mod:`sanitylib.plotting`: mask grids, similarity curves and bars.
- :mod:`sanitylib.experiments`, :mod:`sanitylib.parameter_randomization`,
  :mod:`sanitylib.data_randomization`: the two sanity checks run end to end, cached, tidy.
- :mod:`sanitylib.edges`, :mod:`sanitylib.theory`: edge detectors, the linear and one-layer
  conv models of Section 5.
- :mod:`sanitylib.quality`: local against global attribution, infidelity, max-sensitivity and
  the smoothed network of Kokhlikyan et al.
- :mod:`sanitylib.text_data`, :mod:`sanitylib.text`, :mod:`sanitylib.text_saliency`,
  :mod:`sanitylib.text_quality`: SST-2, a fine-tuned transformer encoder and its explanations.
"""

__version__ = "0.1.0"
