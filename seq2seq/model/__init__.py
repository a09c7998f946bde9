"""The model: encoder, attention, decoder, and `build_model`."""

from seq2seq.model.decoder import DecoderState, Memory, reorder_state, select_memory
from seq2seq.model.ensemble import Ensemble
from seq2seq.model.seq2seq import Seq2Seq, build_model

__all__ = ["DecoderState", "Ensemble", "Memory", "Seq2Seq", "build_model", "reorder_state", "select_memory"]
