"""lstmtui: train character-level LSTM language models in the terminal and watch them learn."""

__version__ = "0.1.0"
