"""The neural stage: recordings of mouse V1 (a user's, or a simulated population's), the
predictive model fitted to them, and what the targets stage reads from it.

    recordings.py  the documented HDF5 format of one scan, and its validating loader
    simulate.py    a model V1 population that writes scans in that format
    images.py      natural images -> the stimulus size the recordings use
    predictor.py   the predictive model (neuralpredictors) and its fit
    compat.py      the one compatibility shim neuralpredictors 0.3.0 needs
"""
