"""Course folders: files read into validated data, synced into the store, checked for authors."""
