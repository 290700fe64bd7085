"""NeuraLadder: a progressive (easy -> hard) training set built from model rollouts.

`observe_r1.ladder.build` runs the builder (``observe-r1 ladder``: `LadderConfig`,
`build_ladder`); `observe_r1.ladder.steps` holds its model-free rules,
`observe_r1.ladder.rollouts` the batched generation, `observe_r1.ladder.cache` the
resumable rollout cache and `observe_r1.ladder.plot` the level figure.
"""
