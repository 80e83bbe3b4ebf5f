"""Ready-made training tasks behind the scripts in ``examples/`` and ``pynn-eventprop train``.

:mod:`.yin_yang` (the main job) and :mod:`.images` (MNIST-5k and Fashion-MNIST: the network
recipe, data augmentation and the training script's logic) are importable so that scripts,
benchmarks and tests share one copy.
"""
