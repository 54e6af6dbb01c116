# Downloads of external data into resources/. Local rules: cluster nodes often have no
# network, so these run on the submitting host. Offline, each fails naming the files to place.


localrules:
    download_mnist,
    download_cifar10,
    download_cifar10_train,


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
        torchvision_files("CIFAR10"),
    log:
        "logs/resources/cifar10.log",
    conda:
        "../envs/deepunfold.yaml"
    params:
        dataset="CIFAR10",
    script:
        "../scripts/download_torchvision.py"


# CIFAR-10's training batches (task 7 trains on them) as their own rule: the test files alone
# satisfy task 2. After download_cifar10: both come from one archive, never extracted twice.
rule download_cifar10_train:
    input:
        torchvision_files("CIFAR10"),
    output:
        [f"resources/cifar10/{f}" for f in TORCHVISION["CIFAR10"]["train_files"]],
    log:
        "logs/resources/cifar10_train.log",
    conda:
        "../envs/deepunfold.yaml"
    params:
        dataset="CIFAR10",
        part="train_files",
    script:
        "../scripts/download_torchvision.py"
