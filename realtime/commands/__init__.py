"""Sub-commands of ``castrt`` (one module each) and the options they share."""
