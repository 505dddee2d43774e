"""openSMILE functionals (eGeMAPSv02, ComParE_2016) of whole clips, cached.

The hand-crafted front-end of the challenge baselines: one vector of
functionals per clip (88 for eGeMAPSv02, 6,373 for ComParE_2016), computed by
audEERING's ``opensmile`` package, whose wheel ships the openSMILE binary.

Extraction is the slow part of such a baseline (about 0.1 to 1 s of CPU per
clip for ComParE_2016), so each clip's vector is stored once, in its own
``.npy`` file named after the audio file's signature (path, size and
modification time, :func:`emoshare_sb.data.files.audio_signature`)
in a folder of its feature set and openSMILE version. A rerun reads the files
back; a killed run keeps every clip it finished (each file is written
atomically) and resumes with the others; an audio file that changes gets a
new signature and is extracted anew. Clips are extracted in parallel over
``num_workers`` processes with a progress bar.

Authors
 * emoshare_sb contributors 2026
"""

import concurrent.futures
import hashlib
import json
import multiprocessing
import os

import numpy as np
from tqdm import tqdm

from emoshare_sb.data.errors import DataPrepError
from emoshare_sb.data.files import audio_signature
from emoshare_sb.utils.io import atomic_write, write_json

FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")
CONFIG_FILE = "feature_set.json"


class OpenSmileError(DataPrepError):
    """openSMILE is missing, or could not process a file (the user's to fix)."""


def make_smile(feature_set):
    """An ``opensmile.Smile`` computing the functionals of ``feature_set``.

    Arguments
    ---------
    feature_set : str
        ``"eGeMAPSv02"`` or ``"ComParE_2016"``.

    Returns
    -------
    opensmile.Smile
        Functionals of the whole signal (first channel).

    Example
    -------
    >>> len(make_smile("eGeMAPSv02").feature_names)
    88
    """
    if feature_set not in FEATURE_SETS:
        raise OpenSmileError(
            f"feature_set must be one of {list(FEATURE_SETS)}, got '{feature_set}'"
        )
    try:
        import opensmile
    except ImportError as error:
        raise OpenSmileError(
            "the openSMILE baseline needs the opensmile package: pip install opensmile"
        ) from error
    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def extract_file(smile, path):
    """The functionals of one audio file, as openSMILE computes them.

    Arguments
    ---------
    smile : opensmile.Smile
        From :func:`make_smile`.
    path : str
        An audio file openSMILE can read (WAV, FLAC, ...).

    Returns
    -------
    numpy.ndarray
        ``[features]`` float32.

    Example
    -------
    >>> import soundfile
    >>> path = str(getfixture("tmpdir") / "a.wav")
    >>> rng = np.random.default_rng(0)
    >>> soundfile.write(path, 0.1 * rng.standard_normal(16000), 16000)
    >>> extract_file(make_smile("eGeMAPSv02"), path).shape
    (88,)
    """
    try:
        values = smile.process_file(path).to_numpy()[0]
    except Exception as error:  # openSMILE's and audiofile's errors vary
        raise OpenSmileError(
            f"{path}: openSMILE could not process the file ({error})"
        ) from error
    values = values.astype(np.float32)
    if not np.isfinite(values).all():
        bad = smile.feature_names[int(np.flatnonzero(~np.isfinite(values))[0])]
        raise OpenSmileError(
            f"{path}: openSMILE returned a non-finite '{bad}' (is the clip "
            "empty or silent?); remove or fix the file"
        )
    return values


class OpenSmileFunctionals:
    """Cached, parallel extraction of openSMILE functionals for many clips.

    Arguments
    ---------
    feature_set : str
        ``"eGeMAPSv02"`` or ``"ComParE_2016"``.
    cache_folder : str, optional
        Where the clips' vectors are stored (a sub-folder per feature set and
        openSMILE version); shared by runs. None: nothing is cached.
    num_workers : int
        Extraction processes; 0 or 1 extracts in this process.
    progress : bool
        Show a progress bar.

    Example
    -------
    >>> import soundfile
    >>> tmp = getfixture("tmpdir")
    >>> paths = []
    >>> for i in range(2):
    ...     paths.append(str(tmp / f"{i}.wav"))
    ...     soundfile.write(
    ...         paths[-1], 0.1 * np.sin(np.arange(8000) * (i + 1) / 9), 16000
    ...     )
    >>> front_end = OpenSmileFunctionals(
    ...     cache_folder=str(tmp / "cache"), progress=False
    ... )
    >>> front_end(paths).shape
    (2, 88)
    >>> front_end.pending(paths)
    []
    """

    def __init__(
        self,
        feature_set="eGeMAPSv02",
        cache_folder=None,
        num_workers=1,
        progress=True,
    ):
        self.feature_set = feature_set
        self.smile = make_smile(feature_set)
        self.feature_names = list(self.smile.feature_names)
        self.num_workers = int(num_workers)
        self.progress = progress
        self.folder = None
        if cache_folder is not None:
            import opensmile

            self.folder = os.path.join(
                cache_folder, f"{feature_set}-opensmile{opensmile.__version__}"
            )
            self._write_config()

    def _write_config(self):
        """Records the feature names once; a folder of another set is refused."""
        path = os.path.join(self.folder, CONFIG_FILE)
        config = {
            "feature_set": self.feature_set,
            "feature_names": self.feature_names,
        }
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                if json.load(handle) != config:
                    raise OpenSmileError(
                        f"{path}: the cache folder holds other features; "
                        "choose another cache folder"
                    )
            return
        write_json(path, config)

    @property
    def num_features(self):
        """The length of a clip's vector."""
        return len(self.feature_names)

    def cache_file(self, path):
        """The cache file of an audio file (None without a cache folder).

        Arguments
        ---------
        path : str
            The audio file (it must exist: its signature names the file).

        Returns
        -------
        str or None
            ``<folder>/<2 hex>/<sha256 of the signature>.npy``.
        """
        if self.folder is None:
            return None
        try:
            signature = audio_signature(path)
        except OSError as error:
            raise OpenSmileError(
                f"{path}: cannot read the audio file ({error.strerror})"
            ) from error
        key = hashlib.sha256(
            json.dumps(signature, sort_keys=True).encode()
        ).hexdigest()
        return os.path.join(self.folder, key[:2], f"{key}.npy")

    def pending(self, paths):
        """The paths whose features are not in the cache yet, in order.

        Arguments
        ---------
        paths : list of str
            Audio files.

        Returns
        -------
        list of str
            Every path without a cache folder.
        """
        return [
            path
            for path in dict.fromkeys(paths)
            if self.folder is None or not os.path.isfile(self.cache_file(path))
        ]

    def __call__(self, paths):
        """The functionals of every path, extracting only what is not cached.

        Arguments
        ---------
        paths : list of str
            Audio files (duplicates allowed).

        Returns
        -------
        numpy.ndarray
            ``[len(paths), features]`` float32, in the order of ``paths``.
        """
        paths = list(paths)
        todo = self.pending(paths)
        fresh = dict(zip(todo, self._extract(todo), strict=True))
        features = np.zeros((len(paths), self.num_features), np.float32)
        for row, path in enumerate(paths):
            if path in fresh:
                features[row] = fresh[path]
            else:
                features[row] = np.load(self.cache_file(path))
        return features

    def _extract(self, paths):
        """Extracts ``paths`` (in parallel), storing each as it is done."""
        jobs = [(path, self.cache_file(path)) for path in paths]
        bar = tqdm(
            total=len(jobs),
            desc=f"openSMILE {self.feature_set}",
            unit="clip",
            disable=not self.progress or not jobs,
        )
        results = {}
        with bar:
            if self.num_workers <= 1 or len(jobs) <= 1:
                for job in jobs:
                    results[job[0]] = _extract_job(job, self.smile)
                    bar.update()
            else:
                # Fork where there is one: the workers import nothing again.
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context(
                    "fork" if "fork" in methods else None
                )
                with concurrent.futures.ProcessPoolExecutor(
                    max_workers=min(self.num_workers, len(jobs)),
                    mp_context=context,
                    initializer=_init_worker,
                    initargs=(self.feature_set,),
                ) as pool:
                    futures = {
                        pool.submit(_extract_job, job): job[0] for job in jobs
                    }
                    for future in concurrent.futures.as_completed(futures):
                        results[futures[future]] = future.result()
                        bar.update()
        return [results[path] for path in paths]


_WORKER = {}


def _init_worker(feature_set):
    """Builds the worker process' own openSMILE extractor."""
    _WORKER["smile"] = make_smile(feature_set)


def _extract_job(job, smile=None):
    """Extracts one file and stores it in its cache file (if any)."""
    path, cache_file = job
    values = extract_file(smile or _WORKER["smile"], path)
    if cache_file is not None:
        with atomic_write(cache_file, "wb") as handle:
            np.save(handle, values)
    return values
