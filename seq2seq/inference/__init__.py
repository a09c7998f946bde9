"""Translation: `Translator` with its backend (torch or exported) chosen at load, the lines the
command prints and the server answers, and one file translated by several processes."""
