"""
Global Scripter projects: a project folder (C{<name>.json}, C{src/}, C{layout/*.gdl}) read and run
off the processor, its device addresses mapped to this machine.
"""

from twisted_ch.project._addresses import AddressMap, AddressProblem, Target
from twisted_ch.project._folder import Project, ProjectDevice, ProjectError, readProject

__all__ = [
    "AddressMap",
    "AddressProblem",
    "Project",
    "ProjectDevice",
    "ProjectError",
    "Target",
    "readProject",
]
