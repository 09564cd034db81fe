"""multiframe"""
