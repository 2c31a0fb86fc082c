"""The runtime graph: the planner turns the pipeline model into nodes grouped into fused stages; batches move
between them."""
