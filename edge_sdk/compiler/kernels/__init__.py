"""One module per operator family; each exposes ``lower_<op>(op, graph, func_name) -> Step``."""
