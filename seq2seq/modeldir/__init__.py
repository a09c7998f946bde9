"""The model directory: typed metadata, save and load, the model card, the Hugging Face Hub."""
