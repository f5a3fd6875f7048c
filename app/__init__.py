"""cocoon-provider: a desktop app that turns a GPU into a paid COCOON inference worker."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cocoon-provider")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

APP_NAME = "cocoon-provider"
