"""Kanri's REST API (Django REST framework): the same service as the admin, never the admin.

Each module registers its viewsets on the one router (`register(router)`); views call
automations/workflows.py and automations/bookmarks.py and answer with plain data.
"""
