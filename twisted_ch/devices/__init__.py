"""
Global Scripter-style device modules for twisted_ch.

Like modules on a control processor they import C{extronlib}; importing this package first makes
that name resolve to L{twisted_ch.extronlib} (L{twisted_ch.extronlib.install}), so
C{import twisted_ch.devices.extr_sis_generic as DvsModule} works from any code.
"""

from twisted_ch.extronlib import install

install()
