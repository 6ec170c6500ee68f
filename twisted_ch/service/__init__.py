"""
The fleet service behind C{twistd chandler}: the TOML config, the stock probes, the status page
and metrics, the built-in demo, and the services that keep configured devices, servers and a
ControlScript-style program running.  L{twisted_ch.tap} is the thin twistd entry point.
"""
