pytest_plugins = ["realparts"]
