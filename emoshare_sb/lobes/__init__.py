"""Encoders (front-ends) that turn waveforms into frame-level features."""
