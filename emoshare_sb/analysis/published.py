"""Published numbers of the corpora's systems, read from ``published.json``.

One data file, packaged with the library, holds every published number the
reports (``emoshare-report``) and the READMEs compare a run against: the
ComParE 2023 baseline's per-emotion devel Spearman and the published
systems' mean Spearman, the IEMOCAP accuracies of Morais et al., and the
MSP-Podcast anchors. Each entry names its source; entries with a ``readme``
field name the README table rows that show them, which
``tests/test_published.py`` checks against this file.

Authors
 * emoshare_sb contributors 2026
"""

import importlib.resources
import json


def published_results():
    """The content of ``published.json``.

    Returns
    -------
    dict
        ``{"compare23": ..., "iemocap": ..., "msp_podcast": ...}`` (a fresh
        copy on every call).

    Example
    -------
    >>> published = published_results()
    >>> published["compare23"]["baseline_devel_spearman"]["values"]["Anger"]
    0.428
    """
    path = importlib.resources.files(__package__) / "published.json"
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def compare23_system(system_id):
    """One published ComParE 2023 system: name, devel and test mean Spearman.

    Arguments
    ---------
    system_id : str
        Its ``id`` in ``published.json`` (``"baseline"``, ``"atmaja"``, ...).

    Returns
    -------
    dict
        ``system``, ``devel``, ``test`` (None where not published),
        ``source``.

    Example
    -------
    >>> baseline = compare23_system("baseline")
    >>> baseline["devel"], baseline["test"]
    (0.5, 0.514)
    """
    for system in published_results()["compare23"]["systems"]:
        if system.get("id") == system_id:
            return system
    raise KeyError(f"published.json has no ComParE 2023 system {system_id!r}")


def compare23_baseline_devel():
    """The official baseline's devel Spearman per emotion, with its ``mean``.

    Returns
    -------
    dict
        ``{emotion: rho, ..., "mean": rho}``.

    Example
    -------
    >>> baseline = compare23_baseline_devel()
    >>> baseline["Tiredness"], baseline["mean"]
    (0.551, 0.5)
    """
    compare23 = published_results()["compare23"]
    values = dict(compare23["baseline_devel_spearman"]["values"])
    values["mean"] = compare23_system("baseline")["devel"]
    return values
