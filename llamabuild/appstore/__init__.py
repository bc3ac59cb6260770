"""App Store preflight past linkage: bundle metadata, provisioning profile, privacy manifest.

`verify-app` calls `checks.check_app`; each module owns one part (metadata.py, provisioning.py,
privacy.py) and reads only regular, bounded files (a FIFO or a 5 GB "Info.plist" is a finding,
never a hang).
"""
