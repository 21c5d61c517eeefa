"""The web pages: the applicant's capture page, the clerk console and the operator dashboard.

Server-rendered Jinja templates plus small ES modules and a stylesheet, all served from this
package (no CDN). The pages talk to the service only through its public JSON API (`api/`), so
this package imports nothing from `api/`; `api.app.create_app` mounts it.
"""

from faceproof.web.pages import STATIC_DIR, mount_web

__all__ = ["STATIC_DIR", "mount_web"]
