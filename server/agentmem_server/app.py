def create_app(settings=None):  # placeholder replaced below in this session
    raise NotImplementedError
