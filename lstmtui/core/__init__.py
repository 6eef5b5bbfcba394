"""The engine: corpus, model, training, sampling, profiles. Never imports textual."""
