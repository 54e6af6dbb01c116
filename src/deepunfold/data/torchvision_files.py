"""Where torchvision keeps the data sets the study reads, and where to get them by hand.

Standard library only: the workflow reads this table while it parses the Snakefile (through
``deepunfold.pipeline.resources``, which downloads the files), and the readers of
:mod:`deepunfold.data.digits` and :mod:`deepunfold.data.images` name the files to place
from it when they are missing.
"""

__all__ = ["TORCHVISION"]

# torchvision's on-disk layout of the data sets the study uses, and where to get them
TORCHVISION = {
    "MNIST": {
        "files": [
            "MNIST/raw/train-images-idx3-ubyte",
            "MNIST/raw/train-labels-idx1-ubyte",
            "MNIST/raw/t10k-images-idx3-ubyte",
            "MNIST/raw/t10k-labels-idx1-ubyte",
        ],
        "how": "Get them (gunzipped) from https://ossci-datasets.s3.amazonaws.com/mnist/ "
        "or any MNIST mirror.",
    },
    "CIFAR10": {
        "files": [
            "cifar-10-batches-py/test_batch",
            "cifar-10-batches-py/batches.meta",
        ],
        # the training batches (task 7 trains on them; the same archive holds both)
        "train_files": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
        "how": "Get cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
        "and unpack it there.",
    },
}
