#!/usr/bin/env bash
# Installs the offline data sources that come as system packages. Never fails the build: the
# loaders in sanitylib.data report what they found and what they tried.
set -u
if [ -d /usr/share/datasets/fashion-mnist ]; then
  echo ">> data: Fashion-MNIST from Debian's dataset-fashion-mnist is present"
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo ">> data: installing Debian's dataset-fashion-mnist"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
    >/dev/null 2>&1 || echo ">> data: apt could not install dataset-fashion-mnist (the loaders will try other sources)"
else
  echo ">> data: apt-get not usable here; Fashion-MNIST will come from SANITYLIB_DATA or a download"
fi
exit 0
