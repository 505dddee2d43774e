"""Analysis of encoders and results: layer saliency, and the parts of ``emoshare-report``.

* :mod:`~emoshare_sb.analysis.saliency`: layer saliency of an encoder;
* :mod:`~emoshare_sb.analysis.results`: an experiment folder's
  ``results.json`` and predictions, read and checked;
* :mod:`~emoshare_sb.analysis.tables`: Markdown tables of results and
  published numbers;
* :mod:`~emoshare_sb.analysis.plots`: the report's figures;
* :mod:`~emoshare_sb.analysis.published`: the published numbers
  (``published.json``).

Authors
 * emoshare_sb contributors 2026
"""
