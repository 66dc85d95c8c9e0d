// WebRTC is not used between servers; peers that look for it find none.
export const RTCPeerConnection = undefined
export const RTCSessionDescription = undefined
export const RTCIceCandidate = undefined
export default { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate }
