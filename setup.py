"""Packaging for twisted_ch."""

from setuptools import setup

setup(
    name="twisted_ch",
    version="2.3.0",
    description=(
        "Twisted-native re-implementation of Extron's ConnectionHandler: "
        "keep-alive polling and automatic reconnection for AV device links"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=[
        "twisted_ch",
        "twisted_ch.protocols",
        "twisted_ch.endpoints",
        "twisted_ch.extronlib",
        "twisted_ch.devices",
        "twisted_ch.service",
        "twisted_ch.panel",
        "twisted_ch.project",
        "twisted_ch.testing",
        "twisted.plugins",
    ],
    package_data={
        "twisted_ch": ["py.typed"],
        "twisted_ch.panel": ["static/*"],
        "twisted_ch.service": ["static/*"],
        "twisted.plugins": ["*.py"],
    },
    install_requires=[
        "twisted[conch,serial,tls]>=26.10",
        "pyserial>=3.5",
        "cryptography>=41",
    ],
    extras_require={
        "test": [
            "pytest>=9",
            "pytest-twisted>=1.14",
            "hypothesis>=6",
            "selenium>=4.20",
            # the parser checks /metrics (the service writes the text format itself)
            "prometheus_client>=0.20",
        ],
        "snmp": ["pyasn1>=0.6"],
        "dev": [
            "mypy>=2",
            "mypy-zope>=1",
            "ruff>=0.17",
        ],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Networking",
    ],
)
