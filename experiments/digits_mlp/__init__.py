"""A small real experiment exercising the whole path: sklearn digits, an MLP with BatchNorm and dropout,
data-parallel training with eigenkit.train, Orbax resume, the runner's results table."""
