"""The seven FER-2013 expressions, in the Kaggle folders' (alphabetical) order: the order of every
classifier's outputs, the labels files, the manifest and the emoji table (the page reads them from the manifest)."""

FER_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
