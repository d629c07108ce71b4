"""textgenrnn's own builder (textgenrnn/model.py), called with the configuration its shipped weights were trained with.

The values are textgenrnn 2.0.0's defaults (textgenrnn/textgenrnn.py: config, and 465 classes in its vocabulary).
"""

from textgenrnn.model import textgenrnn_model

CONFIG = {"rnn_layers": 2, "rnn_size": 128, "rnn_bidirectional": False, "max_length": 40, "max_words": 10000,
          "dim_embeddings": 100, "word_level": False, "single_text": False}


def build():
    """The package's model for its shipped weights, without loading them (the harness does, by load_weights)."""
    return textgenrnn_model(465, CONFIG)
