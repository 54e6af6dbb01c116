# Downloads of external data into resources/. Local rules: cluster nodes often have no
# network, so these run on the submitting host. Offline, each fails naming the files to place.


localrules:
    download_mnist,
    download_cifar10,


rule download_mnist:
    output:
        torchvision_files("MNIST"),
    log:
        "logs/resources/mnist.log",
    conda:
        "../envs/deepunfold.yaml"
    params:
        dataset="MNIST",
    script:
        "../scripts/download_torchvision.py"


rule download_cifar10:
    output:
        torchvision_files("CIFAR10")
        + [f"resources/cifar10/{f}" for f in TORCHVISION["CIFAR10"]["train_files"]],
    log:
        "logs/resources/cifar10.log",
    conda:
        "../envs/deepunfold.yaml"
    params:
        dataset="CIFAR10",
    script:
        "../scripts/download_torchvision.py"
