"""The atlas of a model: what each filter looks for and where the digits it knows sit.

Built offline from MNIST's test set (`convscope atlas`, build.py), stored beside the weights
(store.py), read by the API without MNIST (neighbors.py places a drawing among its digits)."""
