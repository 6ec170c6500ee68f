"""
Global Scripter projects: a project folder (C{<name>.json}, C{src/}, C{layout/*.gdl}) read and run
off the processor, its device addresses mapped to this machine.
"""
