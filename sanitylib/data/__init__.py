"""Data: MNIST, Fashion-MNIST, photographs and SST-2, each with offline sources."""
