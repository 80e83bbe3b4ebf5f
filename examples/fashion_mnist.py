"""Train a 784-H-10 spiking network on Fashion-MNIST with EventProp through the PyNN API.

Fashion-MNIST (60,000 training and 10,000 test images) comes from the Debian package
``dataset-fashion-mnist`` (``docs/datasets.md``); the accuracy is measured on the full official
test set.  The trained network is then mapped onto the SpiNNaker2 packet model.

    python examples/fashion_mnist.py [--epochs N] [--hidden H] [--seed S] [--quick] [--json PATH]

See ``pynn_eventprop/tasks/images.py`` (network, training loop) and
``pynn_eventprop/tasks/image_script.py`` (options, report).
"""

from __future__ import annotations

from pynn_eventprop.datasets import load_fashion_mnist
from pynn_eventprop.datasets.fashion_mnist import CLASS_NAMES
from pynn_eventprop.tasks.image_script import main
from pynn_eventprop.tasks.images import ImageTask, Settings

TASK = ImageTask(
    name="Fashion-MNIST",
    load=load_fashion_mnist,
    class_names=CLASS_NAMES,
    target=0.86,
    test_description="the full official 10,000-image test set",
    defaults=Settings(epochs=8, lr_decay=0.8),
    quick=dict(epochs=1, n_train=2000, n_test=1000),
    loihi_task="Fashion-MNIST",
    loihi_accuracy=0.79,
    loihi_accuracy_source="Renner et al., preprint (Research Square 2021, "
    "doi:10.21203/rs.3.rs-701752/v1), about 79 %",
)

if __name__ == "__main__":
    main(TASK)
