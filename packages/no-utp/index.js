// uTP is disabled (utp: false): an empty module, as webtorrent expects when utp-native is absent.
module.exports = {}
